"""cert-manager's controller, inside bastion: Certificates issued by selfSigned, CA and ACME
Issuers into the Secrets they name, in cert-manager's layout, and renewed before they expire.
A renewal is a Secret update, so it reaches the gateway by the rotation path every other
Secret change takes."""
