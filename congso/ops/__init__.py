"""Operations: the broker config, the installer, the province roll-up."""
