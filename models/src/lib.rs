//! saker on-node models.
