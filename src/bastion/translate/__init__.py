"""Pure translation from a config source to the IR: `istio` (Gateway, VirtualService,
ServiceEntry and the Kubernetes objects they read). The IR to a data plane's configuration is
that data plane's driver (`bastion.dataplane`)."""
