"""The leaderboard's views: one module each, with one function ``render(selection)``."""
