"""c2c runtime: configuration, logging, signing and the Temporal client, for every component."""
