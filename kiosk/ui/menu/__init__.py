"""Drawing the maintenance menu: the view model its pages are built as (``view``) and the pygame renderer
(``render``). The menu's state and actions live in :mod:`kiosk.staff.menu`."""
