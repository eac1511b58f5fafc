"""Operations: health, readiness, metrics and housekeeping jobs."""
