"""radioflow's stand-in for Stimela's ``scabha`` (only what cabs and schema functions import)."""
