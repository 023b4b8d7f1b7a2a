//! Pricing: turns a period's usage into exact invoice lines.
