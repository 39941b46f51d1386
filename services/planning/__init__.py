"""The planning engine: templates, the working calendar, the schedule (CPM, float, buffer), assignment."""
