"""`bastion analyze`: every problem in a configuration, reported as `istioctl analyze`
reports them (a level, a code, the object, the field, the message).

Pure: it reads the objects, the build made of them and an instant it is given; the CLI
offline, and the control plane over its live store, call it the same way.
"""

from bastion.analysis.codes import CODES, code_of
from bastion.analysis.run import analyze

__all__ = ["CODES", "analyze", "code_of"]
