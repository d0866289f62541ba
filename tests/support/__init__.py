"""Helpers the tests share: factories of files and rows, processes, clients, stubs of outside services."""
