"""The SRCNet datalake: data products with ObsCore ``.meta``, staging ingestion, a local catalogue."""
