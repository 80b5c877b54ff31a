//! BTF field offsets.
