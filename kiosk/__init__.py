"""IC-card donation kiosk for civic activity centers.

Public API is kept small; subpackages:

- ``kiosk.ledger``  signed, hash-chained donation ledger
- ``kiosk.reader``  card readers (nfcpy, PC/SC, simulated) and FeliCa parsing
- ``kiosk.player``  pygame-ce screens and the PyAV movie loop
- ``kiosk.payment`` the payment-terminal seam
"""

__version__ = "0.1.0"
