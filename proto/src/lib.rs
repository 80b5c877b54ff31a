//! saker gRPC API (generated code lands here).
