"""Light plugins shipped inside forge-core (registered as ``builtin-*``)."""
