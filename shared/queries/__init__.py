"""Every runtime SQL statement, one module per aggregate. Callers pass a connection and names."""
