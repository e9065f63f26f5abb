"""The worker's model gateway and egress proxy: how a DevBox reaches models and the network."""
