"""The tokenizer table (which tokenizer counts which models' text), and on each event the
tokenizer that counted it and whether its count is an estimate: columns with database
defaults, so events stored before (and statements that do not name them) need nothing."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('metering', '0011_partitions_schedule'),
    ]

    operations = [
        migrations.CreateModel(
            name='TokenizerRule',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('pattern', models.CharField(max_length=200, unique=True)),
                ('kind', models.CharField(choices=[('tiktoken', 'tiktoken'), ('packaged', 'packaged'), ('uploaded', 'uploaded')], help_text='tiktoken: one of its encodings; packaged: a tokenizer whose files an installed package ships; uploaded: a Hugging Face tokenizer.json sent with the rule.', max_length=16)),
                ('name', models.CharField(help_text="The tiktoken encoding, the packaged tokenizer, or an uploaded one's name.", max_length=100)),
                ('estimated', models.BooleanField(default=False, help_text="Its counts are estimates: not the model's own tokenizer.")),
                ('chat_format', models.CharField(choices=[('openai', 'OpenAI'), ('chatml', 'ChatML (Qwen)'), ('mistral', 'Mistral'), ('none', 'none (estimated)')], help_text="How chat messages are framed: OpenAI's cookbook rule, Qwen's ChatML, mistral-common's encoder; with none, messages are counted as their text, estimated.", max_length=16)),
                ('tokenizer_json', models.TextField(blank=True, editable=False)),
                ('sha256', models.CharField(blank=True, editable=False, max_length=64, verbose_name='SHA-256')),
                ('note', models.CharField(blank=True, max_length=200)),
                ('updated_at', models.DateTimeField(auto_now=True)),
            ],
            options={
                'ordering': ['pattern'],
            },
        ),
        migrations.AddField(
            model_name='usageevent',
            name='estimated',
            field=models.BooleanField(db_default=False),
        ),
        migrations.AddField(
            model_name='usageevent',
            name='tokenizer',
            field=models.CharField(blank=True, db_default='', max_length=100),
        ),
    ]
