"""The status API's HTTP layer: Flask blueprints, the guard in front of them, the page's assets."""
