//! Python bindings (placeholder while written).
