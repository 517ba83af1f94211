"""Pure numpy pharmacokinetics: published models, exact closed-form solutions, populations."""
