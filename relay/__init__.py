"""relay: a self-hosted push-metrics relay between mobile apps, APNs/FCM and Customer.io.

The path of a push metric:

1. An app POSTs ``/v1/metrics`` with its app key (``relay.api.ingest``).
2. The envelope and every item are validated against the wire structs (``relay.models``);
   invalid items are reported by index, valid ones go on.
3. The store's single writer (``relay.store.sqlite.engine``) runs the insert, de-duplicated on
   the item ``id``, attributed to the device's profile at receipt, in a group commit shared
   with every other request that arrived meanwhile.
4. Only after COMMIT does the request get its 200: an acknowledged metric is never lost.

``relay.app.create_app`` is the one place where everything is built, started and stopped.
"""

__version__ = "0.1.0"
