"""Argument validators of the exercises, kept out of the worksheets."""
