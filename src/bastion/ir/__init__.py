"""The intermediate representation: what the gateway must do, in gateway terms, with no Envoy types."""
