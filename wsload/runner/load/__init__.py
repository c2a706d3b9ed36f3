"""The Trio load loop and what runs inside it: the loop, its clients, its own health."""
