"""What workshop.py does, one module per concern; workshop.py itself is the table of commands.

Standard library only: workshop.py runs these with whatever Python 3 the attendee has, before .venv exists.
"""
