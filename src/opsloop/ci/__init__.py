"""CI for models: a pull request's report and the workflow that produces it.

A floor above every domain it reads (tracking, data, registry, evaluation, llm evals) and below
the client: its functions are handed the client's SDK objects and never look one up.

- :mod:`~opsloop.ci.sources`: both branches' runs, the data they read, eval suites' results
- :mod:`~opsloop.ci.gate`: the evaluation gate judged without moving an alias
- :mod:`~opsloop.ci.report` / :mod:`~opsloop.ci.chart`: the Markdown comment and its chart
- :mod:`~opsloop.ci.hosts`: one comment on GitHub or GitLab, found again by a marker
- :mod:`~opsloop.ci.workflow`: the GitHub Actions / GitLab CI files ``ci init`` writes
"""
