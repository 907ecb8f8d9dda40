"""L-infinity attacks behind one registry and one calling convention, and cached adversarial
datasets."""
