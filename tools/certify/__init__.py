"""Certification harness: declarative suites (specs/certification/), JUnit XML, HTML report."""
