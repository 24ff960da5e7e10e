"""The service desk's case types, as data plus the domain rules that need code."""
