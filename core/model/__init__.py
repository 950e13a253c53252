"""The canonical model: the entities every importer maps into, their validation, and work-item keys."""
