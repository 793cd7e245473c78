"""Figures for papers: matplotlib renderings of stored data, each with its CSV and a script that redraws it."""
