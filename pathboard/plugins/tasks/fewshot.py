"""(being written: lands with issue 5)"""
