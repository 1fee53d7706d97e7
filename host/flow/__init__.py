"""The flows: the engine, the flow table and the steps of every terminal message."""
