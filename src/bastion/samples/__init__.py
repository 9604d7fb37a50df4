"""Local stand-ins for the task's sample backends: the real httpbin, and Istio's helloworld."""
