"""Local fakes of the services relay talks to, for tests and QA; production relay never imports
this package (it ships beside ``relay`` only so that ``relay-fakes`` is installed with it).

relay forwards to Customer.io and sends through APNs and FCM, which tests and QA must never hit.
This package holds local stand-ins for them: Customer.io's Track and Pipelines APIs
(:mod:`relay_fakes.fake_customerio`), with request validators built from Customer.io's own
published OpenAPI documents (:mod:`relay_fakes.cio_spec`, copies in ``specs/``) so that "the fake
accepted it" means "the spec accepts it" rather than "whatever the fake's author believed"; APNs
over HTTP/2 (:mod:`relay_fakes.fake_apns`); FCM HTTP v1 (:mod:`relay_fakes.fake_fcm`); and the
``relay-fakes`` command that runs the push fakes for QA (:mod:`relay_fakes.cli`).
"""
