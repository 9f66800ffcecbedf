"""certctl's database: DSNs, and seeding or removing the load-test fleet."""
