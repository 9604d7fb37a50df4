"""Message codes. Where `istioctl analyze` has a message for the same finding, its code
(IST...) is used, so that users' searches and suppressions carry over; bastion's own
findings are numbered alike (BST...)."""

from __future__ import annotations

# diagnostic code (what translation and the analyzers name a finding) -> message code
CODES: dict[str, str] = {
    # Istio's
    "NotFound": "IST0101",  # ReferencedResourceNotFound
    "CredentialNotFound": "IST0101",
    "GatewayNotFound": "IST0101",
    "SelectorNotFound": "IST0101",
    "CredentialInvalid": "IST0161",  # InvalidGatewayCredential
    "CertificateExpired": "IST0161",
    "CertificateNotYetValid": "IST0161",
    "HostNotInGateway": "IST0132",  # VirtualServiceHostNotFoundInGateway
    "DuplicateHost": "IST0145",  # ConflictingGateways
    # bastion's
    "Invalid": "BST0001",  # refused by validation (the object would not be stored)
    "NotImplemented": "BST0002",
    "Ignored": "BST0003",
    "Unsupported": "BST0004",
    "PortConflict": "BST0101",
    "DuplicatePortName": "BST0102",
    "NoRoutes": "BST0103",
    "NoEndpoints": "BST0104",
    "CertificateExpiring": "BST0201",
    "CertificateHostMismatch": "BST0202",
    "HostCertificateDiffers": "BST0203",
    "OcspStaple": "BST0204",
    "OcspStapleExpired": "BST0205",
}


def code_of(name: str) -> str:
    """The message code of a finding (an unknown one keeps its name, so nothing is hidden)."""
    return CODES.get(name, name)
