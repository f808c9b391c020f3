"""The donation: a pure state machine (``flow``) and the two-phase service that runs its effects (``service``).

Public API::

    from kiosk.donation import flow
    flow.step(state, event, settings) -> (state, [effects])     pure; no I/O, no clock
    flow.screen_for(state, settings) -> Screen                  what to draw
    DonationService(ledger, terminal, settings, ...)            intent -> charge -> donation/failure -> thank-you

See docs/donation.md.
"""

from kiosk.donation import flow

__all__ = ["flow"]
