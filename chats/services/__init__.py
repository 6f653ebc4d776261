"""Writes of chats, one module per area:

- messages: sending with delivery guarantees, posting rules, office hours
- chats: creating direct and group chats, adding and removing members
- sync: class and staff chats and organisation channels kept in step with the directory
- moderation: announcement mode, mute, remove, delete any, reports, opening hours
- content: edit, delete, reactions, pins, polls, attachments, read position
- channels: broadcast channels, acknowledgements, private replies, SMS escalation
"""
