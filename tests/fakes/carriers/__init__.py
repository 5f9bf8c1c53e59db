"""Local fake carriers: real HTTP servers on 127.0.0.1 speaking each carrier's wire format."""
