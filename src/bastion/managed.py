"""Annotations bastion puts on the objects it makes (read by the CLI as well)."""

# On objects made from what runs (the gateway's Service and Pod): they cannot be changed.
MANAGED_ANNOTATION = "bastion.dev/managed"
# On a pod: where its log is, for `bastion logs`.
LOG_ANNOTATION = "bastion.dev/log"
