"""Kubernetes side: which resources we watch, how, and the in-memory cache they feed."""
