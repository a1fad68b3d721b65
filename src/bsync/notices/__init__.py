"""Notices to customers: which confirmation, change, cancellation or reminder is due
(plan, pure), sending it exactly once (send), its text (messages) and invitation (ics),
through each channel's carrier (channels: SendGrid for email, Twilio for SMS today).
"""
