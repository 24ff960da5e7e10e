"""Diagrams: workflow -> graph model -> Mermaid / DOT (not built yet)."""
