"""What the tests share, so no test module imports another: one wait helper (``wait``),
one test stack on :class:`oracle.dev.stack.LocalStack` (``stack``), chain helpers
(``chain``), the database reads that know the schema (``db``), the Coordinator-only chain
(``contract``), model files (``models``), a PostgreSQL cluster (``postgres``), and the
exactly-once check the fault tests share (``checks``)."""
