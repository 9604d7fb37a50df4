from bastion.cli.main import main

main()
