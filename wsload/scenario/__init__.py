"""Scenario files: parsed in one place (``parse``) into frozen objects (``model``)."""
