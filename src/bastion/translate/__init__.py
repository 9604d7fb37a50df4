"""Pure translation: Istio resources to the IR, and the IR to Envoy resources."""
