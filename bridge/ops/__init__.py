"""Operations: settings, doctor, metrics, logs and reconciliation."""
