"""DLMS/COSEM application layer: A-XDR data, APDUs, ciphering."""
