"""Communication graphs and GNN message passing between agents (see the communication issue)."""
