"""Development and test tools: nothing here runs in production relay.

relay forwards to Customer.io, which tests and QA must never hit. This package holds a local
stand-in for Customer.io's Track and Pipelines APIs (:mod:`relay.devtools.fake_customerio`) and
the request validators it uses, built from Customer.io's own published OpenAPI documents
(:mod:`relay.devtools.cio_spec`, copies in ``specs/``), so "the fake accepted it" means "the spec
accepts it" rather than "whatever the fake's author believed".
"""
