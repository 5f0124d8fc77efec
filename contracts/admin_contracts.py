"""Contracts and their amendments in the admin; every write goes through contracts.services."""
